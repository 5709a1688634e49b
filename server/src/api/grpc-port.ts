// The native gRPC port (BATON_GRPC_PORT): the same services, handlers and interceptors as the main
// port, served by @grpc/grpc-js instead of connect-node. The main port speaks every protocol
// (gRPC, Connect, gRPC-Web, HTTP/1.1); this one speaks only gRPC over HTTP/2, and does it with
// a third of the transport's CPU per unary call (shared/STACK.md: 7.5k–9.7k calls/s against
// 2.2k–3.8k), which is what producers making one call per job, and large worker fleets, are
// limited by.
//
// Connect's own invocation path runs each call (createHandlerContext, invokeUnaryImplementation,
// transformInvokeImplementation), so interceptors — auth, metrics, the error boundary — and
// handlers behave exactly as on the main port; only the framing differs.

import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from '@connectrpc/connect';
import { invokeUnaryImplementation, transformInvokeImplementation } from '@connectrpc/connect/protocol';
import type { TlsOptions } from './main-port.ts';

export interface ServiceEntry {
  service: DescService;
  impl: Partial<ServiceImpl<DescService>>;
}

/** Where services are registered: a Connect router, or a list both listeners serve. */
export interface ServiceRegistry {
  service<T extends DescService>(service: T, impl: Partial<ServiceImpl<T>>): unknown;
}

/** A registry that keeps what is registered, to be served on both ports. */
export function serviceList(): ServiceRegistry & { readonly entries: ServiceEntry[] } {
  const entries: ServiceEntry[] = [];
  return {
    entries,
    service(service, impl) {
      entries.push({ service, impl: impl as Partial<ServiceImpl<DescService>> });
    },
  };
}

export interface GrpcPortOptions {
  host: string;
  /** 0 picks a free port; the real one is returned. */
  port: number;
  services: ServiceEntry[];
  interceptors: Interceptor[];
  /** Values every call starts with (which connection facts auth may ask about). */
  contextValues: (call: { clientCertificate: boolean }) => ContextValues;
  tls?: TlsOptions;
  maxMessageBytes: number;
  maxStreamsPerConnection: number;
}

export interface GrpcPort {
  port: number;
  /** Ends calls after `graceMs`, then closes every connection. */
  close(graceMs: number): Promise<void>;
}

export async function startGrpcPort(options: GrpcPortOptions): Promise<GrpcPort> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_concurrent_streams': options.maxStreamsPerConnection,
  });
  // With TLS, a verified client certificate is either required of every client or not asked for:
  // grpc-js cannot ask for one and let clients without it in (see the checks in config.ts).
  const clientCertificate = Boolean(options.tls?.requireClientCert);
  for (const { service, impl } of options.services) {
    const spec = createServiceImplSpec(service, impl);
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const method of Object.values(spec.methods)) {
      const name = method.method.name;
      definition[name] = {
        path: `/${service.typeName}/${name}`,
        requestStream: method.kind === 'client_streaming' || method.kind === 'bidi_streaming',
        responseStream: method.kind === 'server_streaming' || method.kind === 'bidi_streaming',
        requestSerialize: serializer(method.method.input),
        requestDeserialize: deserializer(method.method.input),
        responseSerialize: serializer(method.method.output),
        responseDeserialize: deserializer(method.method.output),
      };
      handlers[name] = handlerFor(method, options.interceptors, () => options.contextValues({ clientCertificate }));
    }
    server.addService(definition, handlers);
  }
  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(
        options.tls.requireClientCert && options.tls.ca ? Buffer.from(options.tls.ca) : null,
        [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }],
        clientCertificate,
      )
    : grpc.ServerCredentials.createInsecure();
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port,
    async close(graceMs) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

function serializer<T extends DescMessage>(schema: T) {
  return (message: MessageShape<T>) => Buffer.from(toBinary(schema, message));
}

function deserializer<T extends DescMessage>(schema: T) {
  return (bytes: Buffer) => fromBinary(schema, bytes);
}

type AnyCall = grpc.ServerUnaryCall<any, any> | grpc.ServerReadableStream<any, any> | grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>;

/**
 * A Connect handler context for a grpc-js call: its metadata as headers, its cancellation (by the
 * client, or its deadline, which grpc-js enforces) as the context's signal.
 */
function contextFor(spec: MethodImplSpec, call: AnyCall, contextValues: ContextValues): HandlerContext {
  const requestHeader = new Headers();
  for (const [key, value] of Object.entries(call.metadata.getMap())) {
    if (!key.endsWith('-bin')) requestHeader.append(key, String(value));
  }
  const context = createHandlerContext({
    service: spec.method.parent,
    method: spec.method,
    protocolName: 'grpc',
    requestMethod: 'POST',
    url: `/${spec.method.parent.typeName}/${spec.method.name}`,
    requestHeader,
    contextValues,
  });
  (call as NodeJS.EventEmitter).once('cancelled', () => context.abort(CALL_CANCELLED));
  return context;
}

/**
 * The abort reason of every call grpc-js reports cancelled. One instance: grpc-js reports it at the
 * end of every call, finished or not, and an error built per call (its stack captured) cost 3 % of
 * the broker's CPU under single enqueues.
 */
const CALL_CANCELLED = new ConnectError('the call was cancelled or its deadline passed', Code.Canceled);

function metadataOf(...headers: Headers[]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const header of headers) {
    header.forEach((value, key) => {
      if (!key.endsWith('-bin')) metadata.add(key, value);
    });
  }
  return metadata;
}

/** A Connect error (or anything thrown) as a grpc-js status, with its metadata as trailers. */
function toStatus(error: unknown, context?: HandlerContext): Partial<grpc.StatusObject> {
  const connectError = ConnectError.from(error);
  const metadata = metadataOf(...(context ? [context.responseTrailer] : []), connectError.metadata);
  return { code: connectError.code as number as grpc.status, details: connectError.rawMessage, metadata };
}

function trailersOf(context: HandlerContext): grpc.Metadata {
  return metadataOf(context.responseTrailer);
}

function handlerFor(spec: MethodImplSpec, interceptors: Interceptor[], values: () => ContextValues): grpc.UntypedHandleCall {
  switch (spec.kind) {
    case 'unary':
      return (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        const context = contextFor(spec, call, values());
        invokeUnaryImplementation(spec, context, call.request, interceptors).then(
          (response) => callback(null, response, trailersOf(context)),
          (error: unknown) => callback(toStatus(error, context)),
        );
      };
    case 'server_streaming':
      return (call: grpc.ServerWritableStream<any, any>) => {
        const context = contextFor(spec, call, values());
        void stream(call, transformInvokeImplementation(spec, context, interceptors)(single(call.request)), context);
      };
    case 'bidi_streaming':
      return (call: grpc.ServerDuplexStream<any, any>) => {
        const context = contextFor(spec, call, values());
        void stream(call, transformInvokeImplementation(spec, context, interceptors)(requestsOf(call)), context);
      };
    case 'client_streaming':
      return (call: grpc.ServerReadableStream<any, any>, callback: grpc.sendUnaryData<any>) => {
        const context = contextFor(spec, call, values());
        (async () => {
          let response: unknown;
          for await (const message of transformInvokeImplementation(spec, context, interceptors)(requestsOf(call))) response = message;
          return response;
        })().then(
          (response) => callback(null, response, trailersOf(context)),
          (error: unknown) => callback(toStatus(error, context)),
        );
      };
  }
}

/**
 * A call's requests as an async iterable that leaves the call whole when its consumer stops early.
 * Iterating a grpc-js call directly (`for await`) destroys its readable side as soon as the loop
 * is left by a `break` or a throw, and a status sent after that never reaches the client, whose
 * stream then stays open forever: a Lease session that the broker ends (a protocol error, an
 * expired session, a database outage) must still answer with its status. Read with 'data'
 * listeners instead, paused while the consumer is behind so that HTTP/2 flow control holds.
 */
function requestsOf<T>(call: grpc.ServerReadableStream<T, unknown> | grpc.ServerDuplexStream<T, unknown>): AsyncIterable<T> {
  const buffered: T[] = [];
  const emitter = call as unknown as NodeJS.EventEmitter & { pause(): void; resume(): void };
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | null = null;
  const notify = () => {
    const waiter = wake;
    wake = null;
    waiter?.();
  };
  const onData = (message: T) => {
    buffered.push(message);
    if (buffered.length >= MAX_BUFFERED_REQUESTS) emitter.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (error: unknown) => {
    failure ??= error;
    ended = true;
    notify();
  };
  emitter.on('data', onData);
  emitter.once('end', onEnd);
  emitter.once('error', onError);
  // A cancelled call (the client went away, or its deadline passed) ends the iteration; the
  // handler's context signal has already been aborted by then.
  emitter.once('cancelled', onEnd);
  const detach = () => {
    emitter.off('data', onData);
    emitter.off('end', onEnd);
    emitter.off('error', onError);
    emitter.off('cancelled', onEnd);
  };
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (buffered.length > 0) {
            const message = buffered.shift()!;
            if (buffered.length === 0) emitter.resume();
            yield message;
            continue;
          }
          if (ended) {
            if (failure !== undefined) throw failure;
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        detach();
      }
    },
  };
}

/** Requests read ahead of a slow handler before the call is paused (and the client's window fills). */
const MAX_BUFFERED_REQUESTS = 16;

async function* single<T>(message: T): AsyncIterable<T> {
  yield message;
}

/** Writes a handler's responses, waiting while the client's window is full, then the status. */
async function stream(
  call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>,
  responses: AsyncIterable<unknown>,
  context: HandlerContext,
): Promise<void> {
  try {
    for await (const response of responses) {
      if (call.cancelled) break;
      if (!call.write(response)) {
        await new Promise<void>((resolve) => {
          const emitter = call as NodeJS.EventEmitter;
          const done = () => {
            emitter.off('drain', done);
            emitter.off('cancelled', done);
            resolve();
          };
          emitter.once('drain', done);
          emitter.once('cancelled', done);
        });
      }
    }
    if (!call.cancelled) call.end(trailersOf(context));
  } catch (error) {
    if (!call.cancelled) call.emit('error', toStatus(error, context));
  }
}
