// npm run bench [-- --smoke] [-- --only TEXT] [-- upload]: runs the benchmark and prints its tables.
import { bench } from './bench'
import { uploadBench } from './upload-tree'

const only = process.argv.indexOf('--only')
const smoke = process.argv.includes('--smoke')
// `upload` runs the upload bench (bench/upload-tree.ts) alone; `--only TEXT` leaves it out.
const upload = process.argv.includes('upload')
const print = (report: { text: string; rows: Array<{ ok: boolean }> }): void => {
  console.log(report.text)
  if (report.rows.some((r) => !r.ok)) process.exitCode = 1
}
;(upload ? Promise.resolve() : bench({ smoke, only: only === -1 ? undefined : process.argv[only + 1] }).then(print))
  .then(() => (only === -1 || upload ? uploadBench({ smoke }).then(print) : undefined))
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
