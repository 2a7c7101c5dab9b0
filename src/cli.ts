// What bin/run.js starts: oclif's entry, from inside dist/ so that a bundled build
// (scripts/bundle.mjs) shares one copy of @oclif/core between it and the commands.
export { execute } from '@oclif/core';
