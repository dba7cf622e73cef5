// `node --import ./resolve-here.mjs SCRIPT`: bare imports that SCRIPT's own folder cannot resolve are resolved from
// this folder's node_modules, so the interop tests run the examples (examples/node-sign-client) with the packages
// installed here from the committed lockfile, without installing anything beside the examples.
import { register } from 'node:module';

register('./resolve-here-hooks.mjs', import.meta.url);
