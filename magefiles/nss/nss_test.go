package nss

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const (
	alice = "alice:x:2001:2001:Alice Liddell,,,:/home/alice:/bin/bash"
	bob   = "bob:x:2002:2001::/run/determined/home/bob:/bin/sh"
	carol = "carol:*:65533:65533:Carol:/nonexistent:/usr/sbin/nologin"

	team   = "team:x:2001:alice,bob"
	empty  = "lonely:x:2003:"
	single = "solo:x:2004:carol"

	aliceShadow = "alice:$6$salt$hash:19000:0:99999:7:::"
	bobShadow   = "bob:!:19001:1:2:3:4:5:"
)

func lines(ls ...string) *string { return str(strings.Join(ls, "\n") + "\n") }

// standard is a well-formed set of the three files.
func standard() fixture {
	return fixture{
		passwd: lines(alice, bob, carol),
		group:  lines(team, empty, single),
		shadow: lines(aliceShadow, bobShadow),
	}
}

func TestExportsTheNSSEntryPoints(t *testing.T) {
	so := filepath.Join(buildModule(t), "libnss_determined.so.2")
	f, err := elf.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC && elf.ST_BIND(s.Info) == elf.STB_GLOBAL {
			got = append(got, s.Name)
		}
	}
	sort.Strings(got)
	want := []string{
		"_nss_determined_endgrent", "_nss_determined_endpwent", "_nss_determined_endspent",
		"_nss_determined_getgrent_r", "_nss_determined_getgrgid_r", "_nss_determined_getgrnam_r",
		"_nss_determined_getpwent_r", "_nss_determined_getpwnam_r", "_nss_determined_getpwuid_r",
		"_nss_determined_getspent_r", "_nss_determined_getspnam_r",
		"_nss_determined_setgrent", "_nss_determined_setpwent", "_nss_determined_setspent",
	}
	assertLines(t, "exported functions", got, want)
}

func TestPasswdLookups(t *testing.T) {
	fx := standard()
	getent(t, fx, 0, []string{alice}, "passwd", "alice")
	getent(t, fx, 0, []string{bob}, "passwd", "2002")
	getent(t, fx, 0, []string{carol}, "passwd", "65533")
	getent(t, fx, 0, []string{alice, bob}, "passwd", "alice", "bob")
	getent(t, fx, 2, nil, "passwd", "nosuchuser")
	getent(t, fx, 2, nil, "passwd", "4242")
}

func TestGroupLookups(t *testing.T) {
	fx := standard()
	getent(t, fx, 0, []string{team}, "group", "team")
	getent(t, fx, 0, []string{team}, "group", "2001")
	getent(t, fx, 0, []string{empty}, "group", "lonely")
	getent(t, fx, 0, []string{single}, "group", "2004")
	getent(t, fx, 2, nil, "group", "nosuchgroup")
	getent(t, fx, 2, nil, "group", "4242")
}

func TestGroupMembersAreNormalized(t *testing.T) {
	// Empty member names (",,", leading or trailing commas) are dropped.
	fx := fixture{group: lines("odd:x:2100:,alice,,bob,")}
	getent(t, fx, 0, []string{"odd:x:2100:alice,bob"}, "group", "odd")
}

func TestShadowLookups(t *testing.T) {
	fx := standard()
	getent(t, fx, 0, []string{aliceShadow}, "shadow", "alice")
	getent(t, fx, 0, []string{bobShadow}, "shadow", "bob")
	getent(t, fx, 2, nil, "shadow", "carol")
}

func TestEnumerationListsInjectedEntriesAfterFiles(t *testing.T) {
	fx := standard()
	for _, tc := range []struct {
		db       string
		injected []string
	}{
		{"passwd", []string{alice, bob, carol}},
		{"group", []string{team, empty, single}},
		{"shadow", []string{aliceShadow, bobShadow}},
	} {
		t.Run(tc.db, func(t *testing.T) {
			want := append(baseline(t, tc.db), tc.injected...)
			getent(t, fx, 0, want, tc.db)
		})
	}
}

func TestFilesSourceStillWins(t *testing.T) {
	hostRoot := hostLine(t, "/etc/passwd", "root")
	hostRootGroup := hostLine(t, "/etc/group", "root")
	fx := fixture{
		passwd: lines("root:x:4000:4000:impostor:/tmp:/bin/sh", alice),
		group:  lines("root:x:4000:alice", team),
	}
	getent(t, fx, 0, []string{hostRoot}, "passwd", "root")
	getent(t, fx, 0, []string{hostRoot}, "passwd", "0")
	getent(t, fx, 0, []string{hostRootGroup}, "group", "root")
	// The shadowed entry is still reachable by its own id.
	getent(t, fx, 0, []string{"root:x:4000:4000:impostor:/tmp:/bin/sh"}, "passwd", "4000")
	getent(t, fx, 0, []string{alice}, "passwd", "alice")
}

func TestAbsentFilesMeanNotFound(t *testing.T) {
	fx := fixture{} // /run/determined/etc exists but is empty
	for _, args := range [][]string{
		{"passwd", "alice"}, {"passwd", "2001"},
		{"group", "team"}, {"group", "2001"},
		{"shadow", "alice"},
	} {
		getent(t, fx, 2, nil, args...)
	}
	for _, db := range []string{"passwd", "group", "shadow"} {
		getent(t, fx, 0, baseline(t, db), db)
	}
}

func TestMalformedLinesAreSkipped(t *testing.T) {
	fx := fixture{
		passwd: lines(
			"# a comment",
			"",
			"short:x:3001:3001",
			"long:x:3002:3002:gecos:/home/long:/bin/sh:extra",
			"alpha:x:30a3:3003::/:/bin/sh",
			"signed:x:-3004:3004::/:/bin/sh",
			"plus:x:+3005:3005::/:/bin/sh",
			"overflow:x:4294967296:3006::/:/bin/sh",
			"minusone:x:4294967295:3007::/:/bin/sh",
			"nogid:x:3008:::/:/bin/sh",
			":x:3009:3009::/:/bin/sh",
			"spaced:x: 3010:3010::/:/bin/sh",
			"nulbyte:x:3011:3011::/:/bin/sh\x00trailing",
			alice,
			"garbage without any colon",
			bob,
		),
		group: lines(
			"short:x:3001",
			"alpha:x:gid:alice",
			"toomany:x:3002:a:b",
			team,
		),
		shadow: lines(
			"short:x:1:2:3",
			"alpha:x:day:0:99999:7:::",
			"negative:x:-1:0:99999:7:::",
			aliceShadow,
		),
	}
	getent(t, fx, 0, []string{alice}, "passwd", "alice")
	getent(t, fx, 0, []string{bob}, "passwd", "2002")
	for _, name := range []string{"short", "long", "alpha", "signed", "plus", "overflow", "minusone", "nogid", "spaced", "nulbyte", "3011", "garbage without any colon", "3009", "3001", "3002", "4294967295"} {
		getent(t, fx, 2, nil, "passwd", name)
	}
	getent(t, fx, 0, append(baseline(t, "passwd"), alice, bob), "passwd")

	getent(t, fx, 0, []string{team}, "group", "team")
	for _, name := range []string{"short", "alpha", "toomany", "3001", "3002"} {
		getent(t, fx, 2, nil, "group", name)
	}
	getent(t, fx, 0, append(baseline(t, "group"), team), "group")

	getent(t, fx, 0, []string{aliceShadow}, "shadow", "alice")
	for _, name := range []string{"short", "alpha", "negative"} {
		getent(t, fx, 2, nil, "shadow", name)
	}
	getent(t, fx, 0, append(baseline(t, "shadow"), aliceShadow), "shadow")
}

func TestMalformedFilesMeanNotFound(t *testing.T) {
	binary := string([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0xff, 0xfe, ':', ':', '\n', 0, 0, 0x80, 0x81})
	fx := fixture{passwd: &binary, group: &binary, shadow: &binary}
	for _, args := range [][]string{
		{"passwd", "alice"}, {"passwd", "0"}, {"passwd", "\x7fELF"},
		{"group", "team"}, {"group", "4242"},
		{"shadow", "alice"},
	} {
		if args[1] == "0" {
			// uid 0 is root, found in /etc/passwd by files.
			getent(t, fx, 0, []string{hostLine(t, "/etc/passwd", "root")}, args...)
			continue
		}
		getent(t, fx, 2, nil, args...)
	}
	for _, db := range []string{"passwd", "group", "shadow"} {
		getent(t, fx, 0, baseline(t, db), db)
	}
}

// TestLongEntriesRetryWithLargerBuffers needs glibc to grow its buffer
// several times (ERANGE -> NSS_STATUS_TRYAGAIN), by name, by id and during
// enumeration, where the entry that did not fit must not be skipped.
func TestLongEntriesRetryWithLargerBuffers(t *testing.T) {
	members := make([]string, 3000)
	for i := range members {
		members[i] = fmt.Sprintf("member%04d", i)
	}
	big := "big:x:2500:" + strings.Join(members, ",")
	gecos := strings.Repeat("g", 20000)
	longUser := "longuser:x:2600:2600:" + gecos + ":/home/longuser:/bin/bash"
	longShadow := "longuser:$6$" + strings.Repeat("h", 9000) + ":19000:0:99999:7:::"
	fx := fixture{
		passwd: lines(alice, longUser, bob),
		group:  lines(team, big, single),
		shadow: lines(aliceShadow, longShadow, bobShadow),
	}
	getent(t, fx, 0, []string{big}, "group", "big")
	getent(t, fx, 0, []string{big}, "group", "2500")
	getent(t, fx, 0, append(baseline(t, "group"), team, big, single), "group")
	getent(t, fx, 0, []string{longUser}, "passwd", "longuser")
	getent(t, fx, 0, []string{longUser}, "passwd", "2600")
	getent(t, fx, 0, append(baseline(t, "passwd"), alice, longUser, bob), "passwd")
	getent(t, fx, 0, []string{longShadow}, "shadow", "longuser")
	getent(t, fx, 0, append(baseline(t, "shadow"), aliceShadow, longShadow, bobShadow), "shadow")
}

// probeSource calls the module's entry points directly (dlopen) to check the
// exact NSS status codes and errno values, and enumerates from several
// threads at once.
const probeSource = `
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum nss_status (*grnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*pwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*spnam_fn)(const char *, struct spwd *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*pwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*endent_fn)(void);

static void *lib;
static void *sym(const char *name) {
	void *p = dlsym(lib, name);
	if (p == NULL) { printf("missing %s\n", name); exit(3); }
	return p;
}

static pwent_fn det_getpwent_r;
static int seen[64];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void *enumerate(void *arg) {
	(void)arg;
	for (;;) {
		struct passwd pw;
		char buf[64]; /* small: forces ERANGE retries under contention */
		size_t len = sizeof(buf);
		char *b = buf, *heap = NULL;
		int err = 0;
		enum nss_status st;
		for (;;) {
			st = det_getpwent_r(&pw, b, len, &err);
			if (st != NSS_STATUS_TRYAGAIN || err != ERANGE) break;
			len *= 2;
			free(heap);
			heap = malloc(len);
			b = heap;
		}
		if (st != NSS_STATUS_SUCCESS) { free(heap); return NULL; }
		int id = (int)pw.pw_uid - 5000;
		pthread_mutex_lock(&seen_lock);
		if (id >= 0 && id < 64) seen[id]++;
		pthread_mutex_unlock(&seen_lock);
		free(heap);
	}
}

int main(int argc, char **argv) {
	(void)argc;
	lib = dlopen(argv[1], RTLD_NOW);
	if (lib == NULL) { printf("dlopen: %s\n", dlerror()); return 3; }
	grnam_fn det_getgrnam_r = (grnam_fn)sym("_nss_determined_getgrnam_r");
	pwnam_fn det_getpwnam_r = (pwnam_fn)sym("_nss_determined_getpwnam_r");
	spnam_fn det_getspnam_r = (spnam_fn)sym("_nss_determined_getspnam_r");
	setent_fn det_setpwent = (setent_fn)sym("_nss_determined_setpwent");
	endent_fn det_endpwent = (endent_fn)sym("_nss_determined_endpwent");
	det_getpwent_r = (pwent_fn)sym("_nss_determined_getpwent_r");

	static char big[1 << 20];
	char small[8];
	struct group gr;
	struct passwd pw;
	struct spwd sp;
	int err;
	enum nss_status st;

	err = 0; st = det_getgrnam_r("team", &gr, small, sizeof(small), &err);
	printf("getgrnam_r small: %d %s\n", st, err == ERANGE ? "ERANGE" : "other");
	err = 0; st = det_getgrnam_r("team", &gr, big, sizeof(big), &err);
	printf("getgrnam_r big: %d %s %u %s %s %s\n", st, gr.gr_name, gr.gr_gid, gr.gr_mem[0], gr.gr_mem[1], gr.gr_mem[2] == NULL ? "end" : "more");
	err = 0; st = det_getgrnam_r("nobody-here", &gr, big, sizeof(big), &err);
	printf("getgrnam_r missing: %d %s\n", st, err == ENOENT ? "ENOENT" : "other");
	err = 0; st = det_getpwnam_r("user00", &pw, small, sizeof(small), &err);
	printf("getpwnam_r small: %d %s\n", st, err == ERANGE ? "ERANGE" : "other");
	err = 0; st = det_getpwnam_r("user00", &pw, big, sizeof(big), &err);
	printf("getpwnam_r big: %d %s %u %u %s %s\n", st, pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, pw.pw_shell);
	err = 0; st = det_getspnam_r("user00", &sp, small, sizeof(small), &err);
	printf("getspnam_r small: %d %s\n", st, err == ERANGE ? "ERANGE" : "other");
	err = 0; st = det_getspnam_r("user00", &sp, big, sizeof(big), &err);
	printf("getspnam_r big: %d %s %ld %ld %ld %ld %ld %ld %lu\n", st, sp.sp_pwdp, sp.sp_lstchg, sp.sp_min, sp.sp_max, sp.sp_warn, sp.sp_inact, sp.sp_expire, sp.sp_flag);

	/* Enumeration without det_setpwent opens the file lazily; a too small
	   buffer must not lose the entry. */
	err = 0; st = det_getpwent_r(&pw, small, sizeof(small), &err);
	printf("getpwent_r small: %d %s\n", st, err == ERANGE ? "ERANGE" : "other");
	err = 0; st = det_getpwent_r(&pw, big, sizeof(big), &err);
	printf("getpwent_r retry: %d %s\n", st, pw.pw_name);
	det_endpwent();

	det_setpwent(0);
	pthread_t th[8];
	for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, enumerate, NULL);
	for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
	det_endpwent();
	int total = 0, dup = 0;
	for (int i = 0; i < 64; i++) { total += seen[i]; if (seen[i] > 1) dup++; }
	printf("threads: %d entries, %d duplicated\n", total, dup);
	return 0;
}
`

func TestEntryPointsDirectly(t *testing.T) {
	requireRoot(t)
	lib := buildModule(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "probe")
	if out, err := exec.Command("cc", "-Wall", "-Werror", "-O2", "-pthread", "-o", probe, src, "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}

	var users, shadows []string
	for i := 0; i < 64; i++ {
		users = append(users, fmt.Sprintf("user%02d:x:%d:100:User %d:/home/user%02d:/bin/bash", i, 5000+i, i, i))
		shadows = append(shadows, fmt.Sprintf("user%02d:!hash%d:19000:0:99999:7:::", i, i))
	}
	fx := fixture{
		passwd: lines(users...),
		group:  lines(team),
		shadow: lines(shadows...),
	}
	res := run(t, fx, probe, filepath.Join(lib, "libnss_determined.so.2"))
	if res.exit != 0 {
		t.Fatalf("probe exit %d: %s%s", res.exit, res.stdout, res.stderr)
	}
	// enum nss_status: NOTFOUND 0, SUCCESS 1, TRYAGAIN -2.
	assertLines(t, "probe", res.lines(), []string{
		"getgrnam_r small: -2 ERANGE",
		"getgrnam_r big: 1 team 2001 alice bob end",
		"getgrnam_r missing: 0 ENOENT",
		"getpwnam_r small: -2 ERANGE",
		"getpwnam_r big: 1 user00 5000 100 /home/user00 /bin/bash",
		"getspnam_r small: -2 ERANGE",
		"getspnam_r big: 1 !hash0 19000 0 99999 7 -1 -1 18446744073709551615",
		"getpwent_r small: -2 ERANGE",
		"getpwent_r retry: 1 user00",
		"threads: 64 entries, 0 duplicated",
	})
}

// hostLine is the line of an /etc file whose first field is name.
func hostLine(t *testing.T, path, name string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, name+":") {
			return l
		}
	}
	t.Fatalf("%s has no entry %q", path, name)
	return ""
}

// TestDebugSwitch: LIBNSS_DETERMINED_DEBUG (as in the 0.22.1 images) makes
// each lookup say on stderr which file it read and what it found; without
// it the module is silent.
func TestDebugSwitch(t *testing.T) {
	fx := standard()
	quiet := run(t, fx, "getent", "passwd", "alice")
	if quiet.exit != 0 || quiet.stderr != "" {
		t.Errorf("without LIBNSS_DETERMINED_DEBUG: exit %d, stderr %q, want 0 and nothing", quiet.exit, quiet.stderr)
	}
	fx.env = []string{"LIBNSS_DETERMINED_DEBUG=1"}
	res := run(t, fx, "getent", "passwd", "alice")
	if res.exit != 0 || !strings.Contains(res.stderr, "libnss_determined: /run/determined/etc/passwd: lookup -> SUCCESS") {
		t.Errorf("with LIBNSS_DETERMINED_DEBUG=1: exit %d, stderr %q", res.exit, res.stderr)
	}
	assertLines(t, "getent passwd alice (debug)", res.lines(), []string{alice})
	res = run(t, fixture{env: fx.env}, "getent", "group", "team")
	if !strings.Contains(res.stderr, "libnss_determined: /run/determined/etc/group: cannot open: No such file or directory") {
		t.Errorf("a missing file with LIBNSS_DETERMINED_DEBUG=1: stderr %q", res.stderr)
	}
}

// TestImagesOrderLetsTheInjectedEntryWin: with the module first, as the
// images list it (nsswitch_add_determined.sh), the entry Determined injects
// for a UID wins over one in /etc/passwd (OpenShift appends the running UID
// there); names only in /etc/passwd are still found.
func TestImagesOrderLetsTheInjectedEntryWin(t *testing.T) {
	hostRoot := hostLine(t, "/etc/passwd", "root")
	fx := fixture{
		passwd:   lines("root:x:0:0:injected root:/run/root:/bin/bash", alice),
		nsswitch: "passwd: determined files\ngroup: determined files\nshadow: determined files\n",
	}
	getent(t, fx, 0, []string{"root:x:0:0:injected root:/run/root:/bin/bash"}, "passwd", "0")
	getent(t, fx, 0, []string{alice}, "passwd", "alice")
	fx.passwd = lines(alice)
	getent(t, fx, 0, []string{hostRoot}, "passwd", "root")
}
