// Closing a connection whose request body is still arriving, without resetting it under the client.
//
// A response that ends the connection before the request body has been read (a 413 for a body over the limit,
// a 401 or 429 refused before the body) is followed, in Node, by destroying the socket as soon as the response
// is flushed. The kernel answers the client's next bytes with a reset, and a client still sending its body
// (undici: EPIPE, curl: "Connection reset by peer") may lose the response it had not read yet: up to a quarter of
// 3 MiB uploads refused with a 413 over loopback did. HTTP servers in the field close such connections
// gracefully (Go's net/http half-closes and waits; nginx has `lingering_close`); so does this: the FIN goes out
// after the response, the rest of the body is read and discarded, and the socket is destroyed when the body has
// arrived, the client hangs up, or LINGER_MS have passed, whichever comes first.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The longest a connection closed mid-body keeps reading (and discarding) the rest of it. */
export const LINGER_MS = 2000;

type Closable = Socket & { destroySoon?: () => void };

/**
 * Makes the close that follows this response a lingering one, if the request body has not all arrived.
 * Node's HTTP server ends a connection after a `Connection: close` response by calling the socket's
 * `destroySoon`; that call is replaced here for this socket only.
 */
export function lingerAfterResponse(req: IncomingMessage): void {
  if (req.complete) return;
  const socket = req.socket as Closable | null;
  if (!socket || socket.destroyed) return;
  socket.destroySoon = function lingeringClose(this: Closable): void {
    // Its FIN follows the response already written; the socket stays readable (allowHalfOpen on the server side).
    if (this.writable) this.end();
    const done = (): void => {
      clearTimeout(timer);
      this.destroy();
    };
    const timer = setTimeout(done, LINGER_MS);
    timer.unref();
    // The body's remaining bytes go to the request, which Node drains once its response is finished.
    if (req.complete) return done();
    req.once('end', done);
    req.once('close', done);
    this.once('end', done);
    this.once('close', () => clearTimeout(timer));
  };
}
