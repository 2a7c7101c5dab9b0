#!/usr/bin/env node
// vmenv entry point. Keep this file tiny: startup time of `vmenv --version` and
// `vmenv --help` is a feature (see bench/startup.sh). Commands are found through
// oclif.manifest.json, so help never loads a command module. oclif comes from
// dist/cli.js, so that in the bundled build (scripts/bundle.mjs) this entry and the
// commands share one copy of it.
import { execute } from '../dist/cli.js';

await execute({ dir: import.meta.url });
