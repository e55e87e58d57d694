// vireo: giving up on waits, for a clean exit on SIGINT/SIGTERM.
//
// The control path waits for peers: a client port retries its connect, a
// server port waits for a back end to connect, both wait for replies. An
// application's signal handler calls cancel_waits(); from then on every wait
// for a peer to appear ends at once with an Error ("interrupted"), and a wait
// for a reply from a connected peer ends within 250 ms (a live back end
// answers in microseconds, so a clean stop still stops its rings; a dead one
// cannot hold the process). Background threads of the ports (reconnection,
// the back-end channel) stop reconnecting.
#pragma once

namespace vireo {

// Async-signal-safe; sticky: once called, waits stay cancelled.
void cancel_waits() noexcept;
bool waits_cancelled() noexcept;

}  // namespace vireo
