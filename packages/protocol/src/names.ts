// Names shared by the tunnel's control messages and the launcher API. A module of its own, free of Node
// built-ins, so browser-safe code (the SDK's core) can validate an app name without loading the tunnel.
import { z } from 'zod';

export const APP_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** App names are DNS labels: they become `{app}.{EE_APP_DOMAIN}` hosts. */
export const AppName = z
  .string()
  .regex(APP_NAME_RE, 'app_name must be a DNS label: a-z, 0-9 and inner hyphens, at most 63 characters');
