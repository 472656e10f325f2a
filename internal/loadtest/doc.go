// Package loadtest holds the benchmarks behind `make bench`: the whole
// server driven with correctly signed X webhooks over loopback, and the
// PostgreSQL ceiling for one case-plus-message transaction on the same
// machine, so the two can be compared in one run.
package loadtest
