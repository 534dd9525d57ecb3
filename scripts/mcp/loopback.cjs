// Preloaded (node --require) into the dev stack's MCP server, whose HTTP
// server listens on every interface when given a port alone: a listen
// without a host binds 127.0.0.1 instead, as every server of the stack does.
'use strict';

const net = require('node:net');
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
    const first = args[0];
    if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
        if (typeof args[1] !== 'string') {
            args.splice(1, 0, '127.0.0.1');
        }
    } else if (first !== null && typeof first === 'object'
               && first.host === undefined && first.path === undefined) {
        args[0] = { ...first, host: '127.0.0.1' };
    }
    return listen.apply(this, args);
};
