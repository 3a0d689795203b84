// Package faulttest is kgate's reliability suite: the gateway under broker
// outages, injected produce and commit errors, member churn, slow and
// stalled subscribers, hostile input and HTTP/2 abuse, each run checked by
// internal/verify (every OK'd record consumed, no failed one written).
//
// The fast cases run with `make test`; the long ones (a gateway process
// killed and restarted, bigger loads) are behind the `faults` build tag
// (`make test-faults`), and `make soak` runs random faults for
// SOAK_DURATION.
package faulttest
