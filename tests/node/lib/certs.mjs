// Test PKI generated at test time with the openssl CLI: a CA and leaf certificates signed by it.
import fs from 'node:fs';
import path from 'node:path';
import { run, tmpDir } from './gateway.mjs';

async function openssl(args, cwd) {
  const r = await run('openssl', args, { cwd, timeoutMs: 20000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

// Creates a CA. Returns {dir, caCert (path), caKey (path), caPem (string), leaf(name, sans) -> {cert, key, certPem, keyPem}}.
export async function makeCa(cn = 'Gateway Test CA') {
  const dir = tmpDir('pki-');
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  await openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const ca = { dir, caKey, caCert, caPem: fs.readFileSync(caCert, 'utf8') };
  // sans: e.g. 'DNS:localhost,IP:127.0.0.1'
  ca.leaf = async (name, sans, cn = 'gateway test leaf') => {
    const key = path.join(dir, `${name}.key`);
    const csr = path.join(dir, `${name}.csr`);
    const cert = path.join(dir, `${name}.crt`);
    const ext = path.join(dir, `${name}.ext`);
    fs.writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`);
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
    await openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext], dir);
    return { cert, key, certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
  };
  return ca;
}
