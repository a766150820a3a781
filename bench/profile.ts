// Profiles the server processes of the echo floor and Lockstep under uncontended acquire/release:
//   node --import tsx bench/profile.ts [seconds] [agents]
// Prints server CPU per round trip by category and Lockstep's busiest functions: the same tables
// `npm run bench` writes into docs/benchmarks.md.
import { profileSection, profileServers } from './hot-path.ts';

const seconds = Number(process.argv[2] ?? 3);
const agents = Number(process.argv[3] ?? 10);
console.log(profileSection(await profileServers(agents, seconds), agents, seconds).join('\n'));
process.exit(0);
