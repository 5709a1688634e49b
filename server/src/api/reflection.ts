// gRPC server reflection (v1 and v1alpha) for a Connect router.
//
// No maintained package serves reflection from connect-node (connect-es issue #507;
// @grpc/reflection only plugs into grpc-js servers), yet `buf curl`, grpcurl and
// Postman all need it to call Baton without a local copy of the .proto files. The
// protocol is small: every answer is a set of serialized FileDescriptorProtos, which
// protobuf-es v2 already keeps on each generated DescFile (`file.proto`).
//
// Behaviour follows grpc-go's reference server (google.golang.org/grpc/reflection):
// a file is answered with its transitive imports, imports already sent on the same
// stream are skipped, unknown names get an in-band error_response with NOT_FOUND.

import { Code, ConnectError } from '@connectrpc/connect';
import type { ServiceRegistry } from './grpc-port.ts';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { DescFile, MessageInitShape } from '@bufbuild/protobuf';
import { nestedTypes } from '@bufbuild/protobuf/reflect';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as v1 from '@baton/worker-sdk/gen/grpc/reflection/v1/reflection';
import * as v1alpha from '@baton/worker-sdk/gen/grpc/reflection/v1alpha/reflection';
import { file_grpc_health_v1_health } from '@baton/worker-sdk/gen/grpc/health/v1/health';

type Request = v1.ServerReflectionRequest;
type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>['messageResponse'];

/** Everything reflection can be asked about, resolved once at registration. */
interface Index {
  services: string[];
  byFilename: Map<string, DescFile>;
  bySymbol: Map<string, DescFile>;
  /** "containing.Type#number" → file declaring that extension. */
  byExtension: Map<string, DescFile>;
  /** message type → extension numbers declared for it (empty for known types without any). */
  extensionNumbers: Map<string, number[]>;
}

/**
 * Serves grpc.reflection.v1 and v1alpha ServerReflection on `router`.
 *
 * `files` are the files whose services Baton serves (e.g. `file_baton_v1_broker`);
 * their imports, including google/protobuf/*, are found through each DescFile's
 * `dependencies`. The reflection and health services are always listed too, since
 * this module and `health.ts` are registered together.
 */
export function registerReflection(router: ServiceRegistry, files: DescFile[]): void {
  const own = [v1.file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection, file_grpc_health_v1_health];
  const index = buildIndex(files, own);
  router.service(v1.ServerReflection, {
    serverReflectionInfo: (requests) => serve(index, requests),
  });
  // v1alpha is wire-identical to v1 (only the package differs), so rather than a
  // second implementation its messages are re-read as v1 and back. Reflection
  // traffic is a handful of messages per session; the copy costs nothing.
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const asV1 = mapAsync(requests, (r) => fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, r)));
      for await (const res of serve(index, asV1)) {
        yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(v1.ServerReflectionResponseSchema, res));
      }
    },
  });
}

async function* serve(index: Index, requests: AsyncIterable<Request>): AsyncGenerator<v1.ServerReflectionResponse> {
  // Clients cache what they got; grpc-go skips imports already sent on this stream.
  const sent = new Set<DescFile>();
  for await (const req of requests) {
    yield create(v1.ServerReflectionResponseSchema, {
      validHost: req.host,
      originalRequest: req,
      messageResponse: answer(index, req, sent),
    });
  }
}

function answer(index: Index, req: Request, sent: Set<DescFile>): Answer {
  const r = req.messageRequest;
  switch (r.case) {
    case 'listServices':
      return { case: 'listServicesResponse', value: { service: index.services.map((name) => ({ name })) } };
    case 'fileByFilename': {
      const file = index.byFilename.get(r.value);
      return file ? filesAnswer(file, sent) : notFound(`file not found: ${r.value}`);
    }
    case 'fileContainingSymbol': {
      const file = index.bySymbol.get(stripDot(r.value));
      return file ? filesAnswer(file, sent) : notFound(`symbol not found: ${r.value}`);
    }
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = r.value;
      const file = index.byExtension.get(`${stripDot(containingType)}#${extensionNumber}`);
      return file ? filesAnswer(file, sent) : notFound(`extension not found: ${containingType} ${extensionNumber}`);
    }
    case 'allExtensionNumbersOfType': {
      const numbers = index.extensionNumbers.get(stripDot(r.value));
      return numbers
        ? { case: 'allExtensionNumbersResponse', value: { baseTypeName: stripDot(r.value), extensionNumber: numbers } }
        : notFound(`type not found: ${r.value}`);
    }
    default:
      // grpc-go ends the stream here too: an empty request is a broken client, not a lookup miss.
      throw new ConnectError('reflection request has no message_request set', Code.InvalidArgument);
  }
}

function notFound(message: string): Answer {
  return { case: 'errorResponse', value: { errorCode: Code.NotFound, errorMessage: message } };
}

/** The file first (always, clients may ask again), then its imports not yet sent. */
function filesAnswer(file: DescFile, sent: Set<DescFile>): Answer {
  const out: DescFile[] = [file];
  sent.add(file);
  for (let i = 0; i < out.length; i++) {
    for (const dep of out[i].dependencies) {
      if (!sent.has(dep)) {
        sent.add(dep);
        out.push(dep);
      }
    }
  }
  return { case: 'fileDescriptorResponse', value: { fileDescriptorProto: out.map(encode) } };
}

const encoded = new WeakMap<DescFile, Uint8Array>();
function encode(file: DescFile): Uint8Array {
  let bytes = encoded.get(file);
  if (!bytes) {
    bytes = toBinary(FileDescriptorProtoSchema, file.proto);
    encoded.set(file, bytes);
  }
  return bytes;
}

function buildIndex(files: DescFile[], own: DescFile[]): Index {
  const index: Index = { services: [], byFilename: new Map(), bySymbol: new Map(), byExtension: new Map(), extensionNumbers: new Map() };
  for (const file of [...files, ...own]) {
    for (const s of file.services) if (!index.services.includes(s.typeName)) index.services.push(s.typeName);
  }
  const visit = (file: DescFile): void => {
    if (index.byFilename.has(file.proto.name)) return;
    index.byFilename.set(file.proto.name, file);
    file.dependencies.forEach(visit);
    // Every name a descriptor can be looked up by, as grpc-go's FindDescriptorByName does.
    const names: string[] = [];
    for (const t of nestedTypes(file)) {
      names.push(t.typeName);
      switch (t.kind) {
        case 'service':
          for (const m of t.methods) names.push(`${t.typeName}.${m.name}`);
          break;
        case 'message':
          for (const f of t.fields) names.push(`${t.typeName}.${f.name}`);
          for (const o of t.oneofs) names.push(`${t.typeName}.${o.name}`);
          if (!index.extensionNumbers.has(t.typeName)) index.extensionNumbers.set(t.typeName, []);
          break;
        case 'enum': {
          // Enum values are scoped as siblings of their enum (C++ scoping rules).
          const scope = t.typeName.slice(0, t.typeName.length - t.name.length);
          for (const v of t.values) names.push(scope + v.name);
          break;
        }
        case 'extension': {
          index.byExtension.set(`${t.extendee.typeName}#${t.number}`, file);
          break;
        }
      }
    }
    for (const n of names) if (!index.bySymbol.has(n)) index.bySymbol.set(n, file);
  };
  [...files, ...own].forEach(visit);
  // Extension numbers need every message indexed first: an extension may live in
  // another file than the message it extends.
  for (const file of index.byFilename.values()) {
    for (const t of nestedTypes(file)) {
      if (t.kind === 'extension') index.extensionNumbers.get(t.extendee.typeName)?.push(t.number);
    }
  }
  return index;
}

function stripDot(name: string): string {
  return name.startsWith('.') ? name.slice(1) : name;
}

async function* mapAsync<A, B>(source: AsyncIterable<A>, fn: (a: A) => B): AsyncGenerator<B> {
  for await (const a of source) yield fn(a);
}
