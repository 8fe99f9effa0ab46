/** A bad input value; main reports it as an error annotation naming the input. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    problem: string
  ) {
    super(`Invalid input '${input}': ${problem}`)
    this.name = 'InputError'
  }
}
