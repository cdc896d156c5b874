/**
 * A socket's events (handshakes, connections) read with the observer's own
 * receive loop. Not `socket.events.on()`: zeromq.js builds that emitter once
 * per process with the `require` of the first module registry that loaded
 * it, which breaks where registries come and go (jest runs each test file in
 * its own).
 */
export function onEvents(sock: import('zeromq').Socket, handle: (type: string) => void): void {
  const obs = sock.events;
  void (async () => {
    try {
      while (!obs.closed) handle((await obs.receive()).type);
    } catch {
      // closed with its socket
    }
  })();
}
