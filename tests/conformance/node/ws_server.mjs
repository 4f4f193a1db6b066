// A `ws` package echo server for switchboard's WebSocket client. Prints "listening PORT", echoes every message
// (text as text, binary as binary), accepts permessage-deflate, and exits on SIGTERM.
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true });
server.on('listening', () => console.log(`listening ${server.address().port}`));
server.on('connection', (socket, request) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  if (request.headers['sec-websocket-protocol']) socket.protocol;
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
