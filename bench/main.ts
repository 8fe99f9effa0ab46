// npm run bench [-- --smoke] [-- --only TEXT]: runs the benchmark and prints its table.
import { bench } from './bench'

const only = process.argv.indexOf('--only')
bench({ smoke: process.argv.includes('--smoke'), only: only === -1 ? undefined : process.argv[only + 1] })
  .then((report) => {
    console.log(report.text)
    if (report.rows.some((r) => !r.ok)) process.exitCode = 1
  })
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
