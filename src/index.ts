import * as core from '@actions/core'

// Placeholder entry, replaced by the action's main in the action issue.
core.getInput('attestation', { required: true })
