// Package nss holds the tests of libnss_determined, the glibc NSS module
// (service "determined") whose C sources live in
// dockerfile_scripts/libnss_determined/ and which every image installs.
//
// The tests build the module with the exact command the Dockerfiles use and
// run getent(1) and a small C probe against it inside a private mount
// namespace (unshare(1)): /run is a fresh tmpfs holding the test's
// /run/determined/etc/{passwd,group,shadow}, /etc/nsswitch.conf is a
// bind-mounted test copy, and LD_LIBRARY_PATH points glibc at the freshly
// built module. Nothing on the host is modified. The tests need root.
package nss

// BuildCommand is the command the Dockerfiles run, from the repository root,
// to build the module; the tests run exactly this command.
const BuildCommand = "cc -shared -fPIC -Wall -Werror -O2 -o libnss_determined.so.2 dockerfile_scripts/libnss_determined/*.c"
