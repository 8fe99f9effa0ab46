/** A bad input value; main reports it as an error annotation naming the input. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    /** What is wrong, without the input's name: a caller that wraps it names its own input. */
    readonly problem: string
  ) {
    super(`Invalid input '${input}': ${problem}`)
    this.name = 'InputError'
  }
}
