import { run } from './exec.js'
import { runPost } from './post.js'

await runPost(run)
