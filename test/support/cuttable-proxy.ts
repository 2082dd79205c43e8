/**
 * A TCP proxy to PostgreSQL that a test can cut and restore: the shared PostgreSQL cannot be stopped
 * (other test files use it), so a server under test reaches it through this proxy. Cutting closes the
 * port and drops every open connection, which is what the pool sees when PostgreSQL stops.
 */
import { createServer, type Server, type Socket as TcpSocket, connect as tcpConnect } from 'node:net';

export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<TcpSocket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = tcpConnect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The same port again on restore: the pool keeps its connection string.
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** PostgreSQL "stops": new connections are refused, open ones are torn down. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  restore(): Promise<void> {
    return this.open();
  }
}
