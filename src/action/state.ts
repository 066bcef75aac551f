// What the main step saves (GITHUB_STATE) for its `post:` step (src/post.ts).

/** The run id that labels the step's build containers. */
export const STATE_RUN_ID = 'run-id'
/** JSON array of the directories the step held (staging, the dataset cache's restore path). */
export const STATE_DIRS = 'dirs'
