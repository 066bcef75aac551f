#!/usr/bin/env node
console.log('usage: verify-model')
