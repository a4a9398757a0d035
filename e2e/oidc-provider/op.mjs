// panva's oidc-provider as an upstream OpenID provider for the federation tests: one
// confidential client (this idp), the development login pages (any login, any password: the
// login becomes the subject), and claims for the email and profile scopes. Prints one line,
// "ready", once it listens on 127.0.0.1:$PORT as $ISSUER.
//
// Environment: PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// EMAIL_VERIFIED ("true" or "false"; default "true").
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
};

const provider = new Provider(env('ISSUER'), {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.org`,
          email_verified: (process.env.EMAIL_VERIFIED ?? 'true') === 'true',
          preferred_username: id,
          name: `${id} at oidc-provider`,
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['federation-test-cookie-key'] },
});

const server = provider.listen(Number(env('PORT')), '127.0.0.1', () => {
  console.log('ready');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
