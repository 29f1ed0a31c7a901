/** What both sides of one relay share (relay.ts makes them, one set per client connection). */
import type { Limits } from '../../config/config.js';
import type { Logger } from '../../log.js';
import type { ClientConnection } from '../connection.js';
import type { IdentityHeaderRules } from '../headers.js';
import type { FlowWindows } from './flow.js';
import type { SettingsMirror } from './settings.js';
import type { StreamTable } from './streams.js';

export interface RelayParts {
  readonly streams: StreamTable;
  readonly flow: FlowWindows;
  readonly settings: SettingsMirror;
  readonly connection: ClientConnection;
  readonly options: {
    readonly limits: Limits;
    readonly rules: IdentityHeaderRules;
    readonly log: Logger;
  };
}
