// What `corgi` does first (src/cli/main.ts), for the servers and policies a test starts in its own
// process: the native-thread defaults from the environment (vitest.config.ts sets CORGI_CHECK_THREADS).
import { runtimeSettingsFromEnv } from '../../src/cli/command-env.ts';
import { configureRuntime } from '../../src/common/runtime-settings.ts';

configureRuntime(runtimeSettingsFromEnv(process.env));
