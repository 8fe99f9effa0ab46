import { BoundedBytes } from '../base/bounded'
import type { Connection } from '../ssh/connection'
import { withinTimeout } from './timeout'

/**
 * Runs a short command on a channel of its own; its stdout, or undefined when it could not run or
 * did not answer within `ms` (a server that ignores channel requests).
 */
export function execOutput(connection: Connection, command: string, ms: number): Promise<string | undefined> {
  return withinTimeout(execAnswer(connection, command), ms)
}

/**
 * The most of a short command's answer kept: `found: <pids>` for a few hundred processes. A host that
 * answers with more (600 MB seen) is cut off there: its channel is closed, the rest never held.
 */
const EXEC_ANSWER_BYTES = 4096

function execAnswer(connection: Connection, command: string): Promise<string | undefined> {
  return connection.exec(command).then(
    (ch) =>
      new Promise<string | undefined>((resolve) => {
        const out = new BoundedBytes(EXEC_ANSWER_BYTES)
        ch.on('error', () => {})
        ch.stderr.resume()
        ch.on('data', (d: Buffer) => {
          out.push(d)
          if (out.cut) ch.close()
        })
        ch.on('close', () => resolve(out.text()))
        ch.end()
      }),
    () => undefined
  )
}
