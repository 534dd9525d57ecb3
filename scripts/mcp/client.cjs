#!/usr/bin/env node
// An MCP client made with the official SDK (@modelcontextprotocol/sdk, pinned
// in package-lock.json, installed by scripts/setup): what an agent does,
// for trying an MCP server directly or through the gateway.
//
//   node scripts/mcp/client.cjs URL list                 the tools it sees
//   node scripts/mcp/client.cjs URL call NAME [JSON]     call one, JSON arguments
//
// SARK_TOKEN, when set, is sent as "Authorization: Bearer ...".  Prints the
// answer as JSON; exit status 1 with the error on stderr when a step fails.
'use strict';

const { execFileSync } = require('node:child_process');
const { createRequire } = require('node:module');
const path = require('node:path');

function sdk() {
    const dir = execFileSync(path.join(__dirname, '..', 'setup'), ['--print-mcp'],
                             { encoding: 'utf8' }).trim();
    const req = createRequire(path.join(dir, 'package.json'));
    return {
        Client: req('@modelcontextprotocol/sdk/client/index.js').Client,
        Transport: req('@modelcontextprotocol/sdk/client/streamableHttp.js')
            .StreamableHTTPClientTransport,
    };
}

async function main(argv) {
    const [url, command, name, args] = argv;
    if (!url || !['list', 'call'].includes(command) || (command === 'call' && !name)) {
        throw new Error('usage: client.cjs URL list | client.cjs URL call NAME [JSON]');
    }

    const { Client, Transport } = sdk();
    const headers = process.env.SARK_TOKEN
        ? { Authorization: `Bearer ${process.env.SARK_TOKEN}` } : {};
    const transport = new Transport(new URL(url), { requestInit: { headers } });
    const client = new Client({ name: 'sark-gateway-client', version: '1.0.0' });

    await client.connect(transport);
    try {
        if (command === 'list') {
            const { tools } = await client.listTools();
            return { tools: tools.map((t) => t.name) };
        }
        return await client.callTool({ name, arguments: args ? JSON.parse(args) : {} });
    } finally {
        await client.close();
    }
}

main(process.argv.slice(2)).then(
    (answer) => { process.stdout.write(JSON.stringify(answer) + '\n'); },
    (err) => { process.stderr.write(`client: ${err.message}\n`); process.exitCode = 1; },
);
