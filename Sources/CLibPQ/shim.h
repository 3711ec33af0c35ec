// libpq, PostgreSQL's C client, from Debian's libpq-dev (scripts/deps.sh installs it).
#include <libpq-fe.h>
