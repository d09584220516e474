/*
 * probe.h: `keelctl probe ADDR KIND`, a testing tool that sends one kind of
 * bad input to a node's port and reports whether the node closed the
 * connection (exit 0) or not within PROBE_WAIT_MS (exit 1). Kinds:
 *   garbage        bytes that are not a frame
 *   oversized      a frame header announcing more than KEEL_FRAME_BYTES_MAX
 *   truncated      half a frame, then end of stream
 *   bad-checksum   a whole hello frame with one payload byte flipped
 *   wrong-cluster-client / wrong-cluster-peer
 *                  a valid hello with another cluster id
 *   big-request    a hello, then a client request header announcing 4 MiB
 *   big-hello      no hello; a hello header announcing 4 MiB
 *   silent         connect and say nothing (the hello deadline must close it)
 *   hold:N:MS      not bad input: N client connections that say hello and
 *                  then nothing for MS ms (a flood of idle clients)
 *   get:/PATH      not bad input: an HTTP GET of PATH (the --http port);
 *                  prints the response, exit 0 on 200 OK
 */
#ifndef KEEL_NODE_PROBE_H
#define KEEL_NODE_PROBE_H

#define PROBE_WAIT_MS 3000
#define PROBE_SILENT_WAIT_MS 9000

int probe_run(int argc, char **argv);

#endif
