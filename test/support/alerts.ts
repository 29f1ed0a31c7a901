/**
 * The `code` of the error a Node TLS client gets for the proxy's certificate_revoked alert:
 * OpenSSL 3.0 (Node 20) names it `SSLV3_ALERT_…`, OpenSSL 3.5 (Node 26) `SSL/TLS_ALERT_…`.
 */
export const REVOKED_ALERT_CODE = /^ERR_SSL_(?:SSLV3|SSL\/TLS)_ALERT_CERTIFICATE_REVOKED$/;
