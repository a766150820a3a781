import fc from 'fast-check';

// Every property test runs the same cases on every run, so that CI fails only on a change and a
// failure replays as it was (the tests are deterministic). FC_SEED=<n> explores other cases,
// FC_SEED=random a new one each run (fast-check prints the seed of a failure to replay it).
const seed = process.env.FC_SEED;
if (seed !== 'random') fc.configureGlobal({ seed: seed === undefined ? 20_261_207 : Number(seed) });
