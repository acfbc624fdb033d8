import t from 'tap';
import { tokenScenario } from '../fixtures/token-cli.js';

// `regmirror token …` as child processes beside a running serve, which owns the token file.

t.test('token commands beside a running serve', (t) => tokenScenario(t, 'beside serve'));
