/**
 * What kube-crl-proxy reads in, and drops from, OpenSSL's encoding of a TLS session (the
 * Buffers of `getSession()` and of the `session` event). ssl_asn1.c encodes it as
 *
 *   SSL_SESSION_ASN1 ::= SEQUENCE {
 *     version INTEGER, ssl_version INTEGER, cipher OCTET STRING, session_id OCTET STRING,
 *     master_key OCTET STRING, key_arg [0] IMPLICIT OCTET STRING OPTIONAL,
 *     time [1] EXPLICIT INTEGER OPTIONAL, timeout [2] EXPLICIT INTEGER OPTIONAL,
 *     peer [3] EXPLICIT Certificate OPTIONAL, … }
 *
 * Anything else in it is kept byte for byte; anything unexpected leaves the session as it is.
 *
 * Node 26 hands out a client's session inside an envelope that binds it to the server name it
 * was verified for (`\0nodejs:tls:session:1\0`, the name's length as 16 bits, the name, then
 * the encoding above), and refuses to resume a bare encoding on a verifying connection (lib/
 * _tls_wrap.js, getSessionForReuse). The envelope is read through and kept as it is.
 */
import { children, readSmallInteger, readTlv, seq, Tag, type Tlv } from '../pki/der.js';

const SESSION_PEER_TAG = 0xa3;
/** version, ssl_version, cipher, then session_id. */
const SESSION_ID_FIELD = 3;
const TLS1_3_VERSION = 0x0304;
const NODE_ENVELOPE_PREFIX = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');

/** The session split into Node's envelope (empty when there is none) and OpenSSL's encoding. */
function unwrap(session: Buffer): { readonly envelope: Buffer; readonly encoding: Buffer } {
  const prefix = NODE_ENVELOPE_PREFIX.length;
  if (session.length >= prefix + 2 && session.subarray(0, prefix).equals(NODE_ENVELOPE_PREFIX)) {
    const end = prefix + 2 + session.readUInt16BE(prefix);
    if (end <= session.length)
      return { envelope: session.subarray(0, end), encoding: session.subarray(end) };
  }
  return { envelope: session.subarray(0, 0), encoding: session };
}

/** The session's top-level fields, or null when it is not an SSL_SESSION as encoded above. */
function fieldsOf(session: Buffer): Tlv[] | null {
  try {
    const outer = readTlv(session, 0, session.length);
    if (outer.tag !== Tag.sequence || outer.end !== session.length) return null;
    return children(session, outer);
  } catch {
    return null;
  }
}

/** A copy of the peer certificate in a session; null: none; undefined: unreadable. */
export function certificateInSession(wrapped: Buffer): Buffer | null | undefined {
  const session = unwrap(wrapped).encoding;
  const fields = fieldsOf(session);
  if (fields === null) return undefined;
  const peer = fields.find((f) => f.tag === SESSION_PEER_TAG);
  if (peer === undefined) return null;
  try {
    const cert = readTlv(session, peer.contentStart, peer.end);
    if (cert.tag !== Tag.sequence || cert.end !== peer.end) return undefined;
    return Buffer.from(session.subarray(cert.start, cert.end));
  } catch {
    return undefined;
  }
}

/**
 * The session id in a session; empty until one is assigned, which for a TLS 1.3 server is when
 * OpenSSL builds a NewSessionTicket (ssl_sess.c, ssl_get_new_session: "We generate the session
 * id while constructing the NewSessionTicket in TLSv1.3"). undefined: unreadable.
 */
export function sessionIdOf(wrapped: Buffer): Buffer | undefined {
  const session = unwrap(wrapped).encoding;
  const id = fieldsOf(session)?.[SESSION_ID_FIELD];
  if (id === undefined || id.tag !== Tag.octetString) return undefined;
  return Buffer.from(session.subarray(id.contentStart, id.end));
}

/**
 * A TLS 1.3 client session without the server's certificate in it, for resuming.
 *
 * Resuming a session makes OpenSSL decode it (`setSession`, d2i_SSL_SESSION) and with it the
 * server's certificate and public key — a cost on every upstream connection
 * (bench/README.md#figures-behind-design-choices-in-src) — though nothing reads that certificate on a resumed connection: a TLS 1.3
 * resumption is authenticated by the ticket's key, which only the server that verified as the
 * apiserver holds, and Node checks neither chain nor hostname again (a resumed TLS 1.3 session
 * with no peer certificate is `authorized`). When the server refuses the ticket, the handshake
 * is a full one and verifies the certificate as the first did.
 *
 * Any other session (TLS 1.2, where Node would refuse a resumption without the certificate;
 * one without a certificate; one not encoded as expected) is returned as it is.
 */
export function withoutPeerCertificate(wrapped: Buffer): Buffer {
  const { envelope, encoding: session } = unwrap(wrapped);
  const fields = fieldsOf(session);
  if (fields === null || fields.length < 2) return wrapped;
  const sslVersion = fields[1] as Tlv;
  try {
    if (sslVersion.tag !== Tag.integer || readSmallInteger(session, sslVersion) !== TLS1_3_VERSION)
      return wrapped;
  } catch {
    return wrapped;
  }
  if (!fields.some((f) => f.tag === SESSION_PEER_TAG)) return wrapped;
  const edited = seq(
    ...fields
      .filter((f) => f.tag !== SESSION_PEER_TAG)
      .map((f) => session.subarray(f.start, f.end)),
  );
  return envelope.length === 0 ? edited : Buffer.concat([envelope, edited]);
}
