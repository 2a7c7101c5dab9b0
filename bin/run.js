#!/usr/bin/env node
// vmenv entry point. Keep this file tiny: startup time of `vmenv --version` and
// `vmenv --help` is a feature (see bench/startup.sh). Commands are found through
// oclif.manifest.json, so help never loads a command module.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
