// npm run bench [-- --smoke]: runs the benchmark and prints its table.
import { bench } from './bench'

bench({ smoke: process.argv.includes('--smoke') })
  .then((report) => {
    console.log(report.text)
    if (report.rows.some((r) => !r.ok)) process.exitCode = 1
  })
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
