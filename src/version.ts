/** Kept equal to package.json's version by a test (the bundle carries no package.json). */
export const VERSION = '1.0.0'
