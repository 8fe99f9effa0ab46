import type { PseudoTtyOptions } from 'ssh2'
import type { RunStep } from '../plan/settings'

/**
 * The remote shell text of a script step: the bootstrap that reads the step's id and stages the
 * script from stdin (through sudo when asked), the bytes sent on stdin, and the command that stops a
 * step's processes by its id.
 */

/** Quotes a string for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/**
 * Every process of a step has this variable in its environment, with the step's own token as value:
 * it is how a timeout finds the step's processes where a signal does not reach them.
 */
const STEP_ID_VAR = 'FLEET_STEP_ID'

/**
 * The first line of stdin is the step's id: the command itself is the same for every step, so a
 * channel for the next step can be opened and its command started before the step is known.
 */
const READ_STEP_ID = `IFS= read -r ${STEP_ID_VAR} || exit 125; export ${STEP_ID_VAR}; `

/** Why a stage fails: the temp file could not be written (a full or read-only TMPDIR). */
const STAGE_UNWRITABLE =
  '{ echo "ssh-fleet: could not write the script to a temporary file in $d (TMPDIR on the host): is it full or not writable?" >&2; exit 125; }'

/**
 * Stages the rest of stdin (the script, `env` values included) in a private temp file "$f" (mktemp
 * makes it 0600) in the host's TMPDIR, else /tmp. The file goes on every way out of this shell: a
 * failed write (a full or read-only TMPDIR leaves part of the script), a signal, the end (EXIT
 * trap; `exec` drops the traps, so the shell that runs the script removes it first). A signal ends
 * it with 128 + the signal's number, as a shell reports one.
 *
 * On a pty (`counted`), stdin never ends (sshd ignores the channel's EOF there), so the script's byte
 * count comes first, on a line of its own, and exactly that many bytes are staged; a short read (the
 * session went away mid-script) fails the step rather than run half a script.
 */
function stage(counted: boolean): string {
  return (
    (counted ? 'IFS= read -r n || exit 125; ' : '') +
    `f=; d=\${TMPDIR:-/tmp}; trap 'rm -f "$f"' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; ` +
    `f=$(mktemp "$d/ssh-fleet.XXXXXX") && ${counted ? 'head -c "$n"' : 'cat'} >"$f" || ${STAGE_UNWRITABLE}; ` +
    (counted ? '[ $(wc -c <"$f") -eq "$n" ] || { echo "ssh-fleet: the script arrived incomplete: not run" >&2; exit 125; }; ' : '')
  )
}

/**
 * The pty a `pty: true` step asks for, in raw mode: no echo (the script would come back as output),
 * no line editing (a 4096-byte line limit, ^D, ^U, ^V), no signal keys (^C, ^Z, ^\), no CR/NL
 * translation or 8th-bit stripping on input, no flow control (^S, ^Q); sshd applies these modes before
 * the command starts, so the script's bytes reach the bootstrap as sent. Output processing is off too:
 * line ends arrive as the program writes them, not as \r\n.
 */
export const RAW_PTY: PseudoTtyOptions = {
  modes: {
    ECHO: 0,
    ECHOE: 0,
    ECHOK: 0,
    ECHONL: 0,
    ICANON: 0,
    ISIG: 0,
    IEXTEN: 0,
    ICRNL: 0,
    INLCR: 0,
    IGNCR: 0,
    ISTRIP: 0,
    INPCK: 0,
    PARMRK: 0,
    IXON: 0,
    IXOFF: 0,
    IMAXBEL: 0,
    OPOST: 0,
    CS8: 1,
    PARENB: 0
  }
}

/**
 * The remote command. The script travels on stdin, not in the command line: no size limit, no
 * quoting on the way, and it does not show in `ps`. The interpreter reads it from fd 3 while its
 * own stdin is /dev/null, so the script's stdin is empty and its exit code or signal is the
 * session's. When stdin is a pipe this user may reopen (OpenSSH on Linux and the BSDs) fd 3 is that
 * pipe: no extra process. Otherwise (a socketpair, which /dev/fd cannot reopen on Linux, or
 * dropbear's root-owned 0600 pipe) a POSIX sh stages the script in a private temp file (mktemp
 * makes it 0600), opens it and removes it first.
 */
export function remoteCommand(shell: string, sudo?: Sudo, pty = false): string {
  if (sudo) return `sh -c ${shellQuote(sudoBootstrap(shell, sudo, pty))}`
  const bootstrap =
    READ_STEP_ID +
    (pty ? '' : `if [ -p /dev/stdin ] && [ -r /dev/stdin ]; then exec ${shell} /dev/fd/3 3<&0 </dev/null; fi; `) +
    stage(pty) +
    'exec 3<"$f" || exit 125; rm -f "$f"; ' +
    `exec ${shell} /dev/fd/3 </dev/null`
  return `sh -c ${shellQuote(bootstrap)}`
}

/**
 * A command that sends `signal` to every process of this user carrying the step's id, and prints
 * `found: <pids>` (`unknown` where it cannot look). Where the session's signal does not reach the script (dropbear signals only its direct
 * child; sshd refuses signals to a ForceCommand session) this stops it, children included. The id is
 * written in two pieces so this command's own processes never match it.
 */
export function stopCommand(stepId: string, signal: 'TERM' | 'KILL'): string {
  if (!/^[0-9a-f]{16}$/.test(stepId)) throw new Error(`invalid step id '${stepId}'`)
  const script =
    `v=${STEP_ID_VAR}=; v="\${v}${stepId}"; ` +
    // Never an empty or partial pattern: that would match every process of the user.
    `[ \${#v} -eq ${STEP_ID_VAR.length + 1 + stepId.length} ] || exit 2; ` +
    'if [ -r /proc/self/environ ]; then ' +
    'p=$(grep -l -F "$v" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); ' +
    // No /proc (macOS, the BSDs): ps -E appends each process's environment to its command.
    'elif o=$(ps -A -E -ww -o pid= -o command= 2>/dev/null); then ' +
    `p=$(printf '%s\\n' "$o" | awk '{ if (index($0, " ${STEP_ID_VAR}=" "${stepId}")) print $1 }'); ` +
    'else echo unknown; exit 0; fi; ' +
    `[ -z "$p" ] || kill -${signal} $p 2>/dev/null; echo found: $p`
  return `sh -c ${shellQuote(script)}`
}

/** How a step runs as root: through sudo, with the password when one is given. */
export interface Sudo {
  password?: string
}

/**
 * The remote command of a `sudo: true` step. The login user's sh reads the password (the first line
 * of stdin, when given) into a variable of its own, stages the script in a private temp file, and
 * pipes the password to `sudo -S` with printf, a builtin: it is never in a command line, an
 * environment, a file or the log. The root shell opens the file, removes it, and runs the script
 * with stdin from /dev/null, so the script never sees the password. Without a password, `sudo -n`
 * fails at once with sudo's message. sudo's exit status is the step's (a signal shows as 128+N).
 */
function sudoBootstrap(shell: string, sudo: Sudo, pty: boolean): string {
  const run = `env ${STEP_ID_VAR}="$${STEP_ID_VAR}" sh -c ${shellQuote(`exec 3<"$1" && rm -f "$1" && exec ${shell} /dev/fd/3 </dev/null`)} sh "$f"`
  return (
    READ_STEP_ID +
    (sudo.password !== undefined ? 'IFS= read -r pw || exit 125; ' : '') +
    stage(pty) +
    (sudo.password !== undefined ? `printf '%s\n' "$pw" | sudo -S -p '' -- ${run}` : `sudo -n -- ${run} </dev/null`)
  )
}

/**
 * The bytes sent on stdin: the step's id, the sudo password's line when there is one, on a pty the
 * byte count of what follows, one line of exports (the env, then the FLEET_* variables: every value
 * quoted, as it comes from inputs), then the script untouched.
 */
export function scriptPayload(step: RunStep, stepId: string, fleet: Record<string, string>, sudo?: Sudo): string {
  const head = `${stepId}\n${sudo?.password !== undefined ? `${sudo.password}\n` : ''}`
  const env = { ...step.env, ...fleet }
  const names = Object.keys(env)
  const body = names.length === 0 ? step.script : `export ${names.map((n) => `${n}=${shellQuote(env[n])}`).join(' ')}\n${step.script}`
  return step.pty ? `${head}${Buffer.byteLength(body)}\n${body}` : head + body
}
