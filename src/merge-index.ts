import { run } from './merge'

void run()
