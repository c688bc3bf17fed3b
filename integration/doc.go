// Package integration holds limiquantix's end-to-end tests: real lqd and lq binaries, real
// qemu under TCG, real guests built from Debian packages (see images/ and guest/). They
// need root. With LQ_REQUIRE_INTEGRATION=1 (as `make test` sets) missing prerequisites are a
// failure, not a skip.
package integration
