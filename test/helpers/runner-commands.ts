/**
 * Reads an action's stdout the way GitHub's runner does: a line ends at \n or \r; `::name …` at the
 * start of a line or `##[name]` anywhere in it is a command, unless `::stop-commands::TOKEN` stopped
 * command processing and `::TOKEN::` has not resumed it. Returns the commands the runner would act on.
 */
export function runnerCommands(stdout: string): Array<{ name: string; line: string }> {
  const commands: Array<{ name: string; line: string }> = []
  let stopToken: string | undefined
  for (const line of stdout.split(/\r\n|\n|\r/)) {
    const v2 = /^::([^\s:]+)(?:\s[^:]*)?::(.*)$/.exec(line)
    const legacy = /##\[([^\]\s;]+)[^\]]*\]/.exec(line)
    const name = v2?.[1] ?? legacy?.[1]
    if (name === undefined) continue
    if (stopToken !== undefined) {
      if (name.toLowerCase() === stopToken.toLowerCase()) stopToken = undefined
      continue
    }
    if (name === 'stop-commands') stopToken = v2?.[2] ?? ''
    commands.push({ name, line })
  }
  return commands
}

/** Commands of `stdout` the runner would act on that carry `marker`: injected ones. */
export function injected(stdout: string, marker: string): string[] {
  return runnerCommands(stdout)
    .filter((c) => c.line.includes(marker))
    .map((c) => c.line)
}
