"""The differences between Jira Cloud and Jira Server / Data Center, in one object per deployment.

Cloud speaks REST v3: descriptions and worklog comments in Atlassian Document Format, users by `accountId`
(user search by `query`), issue search at `/search/jql` paged by `nextPageToken` (the old `/search` answers
410 there). Server / Data Center speaks REST v2: plain text, users by `name` (user search by `username`),
issue search at `/search` paged by `startAt`. Sources: https://developer.atlassian.com/cloud/jira/platform/rest/v3/
(and the changelog's removal of /rest/api/3/search), https://docs.atlassian.com/software/jira/docs/api/REST/latest/.
"""

from dataclasses import dataclass

from connector.jira.adf import to_adf


@dataclass(frozen=True)
class Dialect:
    label: str  # shown to operators, e.g. in the mapping Preview
    api_version: str  # the N of /rest/api/N/
    rich_text: bool  # descriptions and comments in ADF (else plain text)
    user_field: str  # the key that names a user in fields (reporter, assignee) and in user search answers
    user_search_param: str  # the user/search parameter that takes the email
    search_path: str  # issue search by JQL, under /rest/api/N/
    search_by_token: bool  # paged by nextPageToken (else by startAt / total)

    def text(self, text):
        """A description or comment as this deployment wants it."""
        return to_adf(text) if self.rich_text else text

    def user(self, user_id):
        """A user reference for reporter/assignee fields."""
        return {self.user_field: user_id}


CLOUD = Dialect(
    label="Cloud (REST v3, ADF)",
    api_version="3",
    rich_text=True,
    user_field="accountId",
    user_search_param="query",
    search_path="search/jql",
    search_by_token=True,
)
SERVER = Dialect(
    label="Server / Data Center (REST v2, plain text)",
    api_version="2",
    rich_text=False,
    user_field="name",
    user_search_param="username",
    search_path="search",
    search_by_token=False,
)


def dialect_for(site):
    """The dialect of a JiraSite (Cloud when there is no site yet, as for a Preview without a connection)."""
    return SERVER if site is not None and site.deployment == site.Deployment.SERVER else CLOUD
