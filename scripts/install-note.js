// Printed at the end of `npm install` (the root's postinstall), once, when the Node that ran npm is
// older than the Node the project runs on. Plain JavaScript: whichever Node runs it must read it.
// npm's user agent names the Node running npm ("npm/11.6.1 node/v20.20.2 linux x64 …"), which is
// the `node` of the user's shell; `node` inside this script may already be the project's Node 24.
const runtime = /\bnode\/v(\d+)\.(\d+)\.(\d+)/.exec(process.env.npm_config_user_agent ?? '');
const major = runtime ? Number(runtime[1]) : Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const version = runtime ? `v${runtime[1]}.${runtime[2]}.${runtime[3]}` : process.version;
  process.stdout.write(
    [
      '',
      `Baton runs on Node 24; your node is ${version}. npm install has added Node 24 to this project (the`,
      '"node" dev dependency), and npm start, npm test, npm run ... and npx ... use it. Run a file of the',
      'project with "npx node FILE" (npx node server/src/main.ts), not "node FILE".',
      '',
    ].join('\n'),
  );
}
