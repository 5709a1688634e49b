// The SDK's name and version, sent in Hello.sdk and the user agent so that operators can tell
// which workers run which SDK.

/** This package's version; keep in step with package.json. */
export const SDK_VERSION = '0.1.0';

/** `baton-ts/<version>`. */
export const SDK_NAME = `baton-ts/${SDK_VERSION}`;
