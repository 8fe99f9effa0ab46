/** The runner's environment without the action's inputs (INPUT_PASSWORD, INPUT_PRIVATE-KEY, …). */
export function runnerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toUpperCase().startsWith('INPUT_')))
}
