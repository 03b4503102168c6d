/* service.h: `offboard run`, the service beside the directory.
 *
 * It keeps one acting agent (the state store locked for its whole life) and
 * runs a full pass at start and every service.full_pass_interval, and at
 * once when the change feed (RFC 4533 syncrepl, where the server offers it;
 * a connection of its own on the agent's loop) reports a change other than
 * the service's own write-back; a pass
 * that cannot reach the directory is tried again sooner, with a capped,
 * jittered backoff, and logged once per outage. It speaks systemd's notify
 * protocol: READY=1 once the configuration is valid and the loop runs (not
 * when LDAP answers: an outage must not become a restart loop), STATUS=
 * after each pass, WATCHDOG=1 from the loop, STOPPING=1. SIGTERM or SIGINT
 * drains the pass running (or stops between passes) and exits 0; SIGHUP
 * reopens the journal and reloads the configuration, only if the new one is
 * valid (else the error is logged with its file:line:col and the running
 * one stays), then passes at once under it.
 *
 * Next: the cookie kept with the changes it covers in the state store, one
 * account reconciled per change rather than a full pass, and the AD and
 * 389-DS feeds (DirSync, USN, modifyTimestamp).
 */
#ifndef OB_SERVICE_H
#define OB_SERVICE_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; takes cfg (loaded from config_path, which a
 * reload reads again). Returns an exit code (enum ob_exit): 0 after a
 * signal, else why it could not start. */
int ob_service_run(const char *config_path, struct ob_config *cfg);

#endif
