#pragma once

// The systemd notification protocol (sd_notify(3)), without libsystemd:
// one datagram to $NOTIFY_SOCKET ("READY=1", "STOPPING=1", ...).  A unit
// with Type=notify waits for READY=1; elsewhere there is no socket and
// nothing is sent.

namespace sark {

// Sends `state`; false when there is no NOTIFY_SOCKET or sending failed.
bool sdNotify(const char* state);

} // namespace sark
