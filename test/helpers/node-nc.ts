/** A netcat in Node, for proxy commands: stdin to a TCP connection to host:port, and back to stdout. */
export const NODE_NC = `${process.execPath} -e 'const s = require("net").connect(+process.argv[2], process.argv[1]); process.stdin.pipe(s); s.pipe(process.stdout); s.on("error", (e) => { console.error(e.message); process.exit(1) }); s.on("close", () => process.exit(0))'`
