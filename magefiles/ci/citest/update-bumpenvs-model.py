#!/usr/bin/env python3
"""A model of Determined's update-bumpenvs-yaml.py, for the tests.

It does what the contract (old-makefile.md, last section) says the real
script does, against a CircleCI API v1.1 given by --api (the tests serve a
stand-in with the builds of the jobs they ran):

1. ask for the last 100 completed builds of the environments project, keep
   those of COMMIT whose status is "success";
2. assert that the set of their job names is exactly the 19
   build-and-publish-docker-<image>-<mpi> names (with -dev under --dev),
   plus publish-cloud-images unless --no-cloud-images: any other job of the
   commit, and any failed or missing docker job, aborts the bump;
3. download every artifact of those builds, key them by file base name and
   assert that this set is exactly the 19 publish-<image>-<mpi> names (plus
   packer-log with cloud images);
4. load each artifact as a YAML mapping and bump each key of bumpenvs.yaml:
   old <- new, new <- the artifact's value.

Nothing is written unless every assertion holds.
"""
import argparse
import json
import os
import sys
import urllib.request

import yaml

PROJECT = "project/github/determined-ai/environments"

# The old CI's matrix: (image, mpi) for every docker job.
BOTH = ["tf1-cpu", "tf2-cpu", "tf28-cpu", "pt-cpu", "tf1-gpu", "tf2-gpu", "tf28-gpu", "pt-gpu"]
ONLY0 = ["pytorch10-tf27-rocm50", "deepspeed-gpu", "gpt-neox-deepspeed-gpu"]
JOBS = [(i, m) for i in BOTH for m in ("0", "1")] + [(i, "0") for i in ONLY0]


def get_json(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


def get_text(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def expected_jobs(dev, cloud):
    sfx = "-dev" if dev else ""
    names = {f"build-and-publish-docker-{i}-{m}{sfx}" for i, m in JOBS}
    if cloud:
        names.add("publish-cloud-images")
    return names


def expected_artifacts(cloud):
    names = {f"publish-{i}-{m}" for i, m in JOBS}
    if cloud:
        names.add("packer-log")
    return names


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dev", action="store_true")
    p.add_argument("--no-cloud-images", action="store_true")
    p.add_argument("--api", required=True, help="CircleCI API v1.1 base URL")
    p.add_argument("bumpenvs_path")
    p.add_argument("commit")
    a = p.parse_args()
    cloud = not a.no_cloud_images

    builds = get_json(f"{a.api}/{PROJECT}?limit=100&filter=completed")
    builds = [b for b in builds if b["vcs_revision"] == a.commit and b["status"] == "success"]
    names = {b["workflows"]["job_name"] for b in builds}
    want = expected_jobs(a.dev, cloud)
    assert names == want, (
        f"successful jobs of {a.commit} are not the expected set: "
        f"missing {sorted(want - names)}, unexpected {sorted(names - want)}"
    )

    artifacts = {}
    for b in builds:
        for art in get_json(f"{a.api}/{PROJECT}/{b['build_num']}/artifacts"):
            artifacts[os.path.basename(art["path"])] = get_text(art["url"])
    want = expected_artifacts(cloud)
    assert set(artifacts) == want, (
        f"artifacts of {a.commit} are not the expected set: "
        f"missing {sorted(want - set(artifacts))}, unexpected {sorted(set(artifacts) - want)}"
    )

    with open(a.bumpenvs_path) as f:
        conf = yaml.safe_load(f)
    for name in sorted(artifacts):
        if name == "packer-log":
            continue
        for key, value in yaml.safe_load(artifacts[name]).items():
            conf[key]["old"] = conf[key]["new"]
            conf[key]["new"] = value
    with open(a.bumpenvs_path, "w") as f:
        yaml.safe_dump(conf, f, default_flow_style=False)
    print(f"bumped {len(artifacts)} artifact files into {a.bumpenvs_path}")


if __name__ == "__main__":
    sys.exit(main())
