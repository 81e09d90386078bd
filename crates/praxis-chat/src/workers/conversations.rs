//! Conversations: open a direct one, create a group, read one, manage members, list mine.

use crate::domain::model::{Conversation, Kind, Listed, Member, Role};
use crate::domain::rules::{check_account, check_title};
use crate::error::ChatError;
use crate::store::Added;

use super::{UseCases, now_ms};

/// What a member change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// The account joined the group.
    Joined,
    /// The account was a member; its role is set.
    RoleSet,
    /// The account left (or was removed); `promoted` became an owner because the last owner
    /// left.
    Left {
        /// The member made owner, if any.
        promoted: Option<String>,
    },
}

impl UseCases {
    /// The direct conversation of `me` and `with`, opened (end-to-end encrypted or not) when
    /// there is none (`true`). There is one per pair: asking for the other mode than the
    /// existing one's is a conflict.
    pub async fn open_direct(
        &self,
        me: &str,
        with: &str,
        encrypted: bool,
    ) -> Result<(Conversation, bool), ChatError> {
        check_account(with).map_err(|m| ChatError::field("with", m))?;
        if with == me {
            return Err(ChatError::field(
                "with",
                "must be another account (a direct conversation has two members)",
            ));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let (found, created) = self
            .store
            .open_direct(&id, me, with, encrypted, now_ms())
            .await?;
        if found.encrypted != encrypted {
            let is = if found.encrypted { "is" } else { "is not" };
            return Err(ChatError::Conflict(
                "direct-conversation-mode",
                format!(
                    "your direct conversation {} with {with} exists and {is} end-to-end encrypted; \
                     open it with \"encrypted\": {}",
                    found.id, found.encrypted
                ),
            ));
        }
        Ok((found, created))
    }

    /// A new group owned by `me`, with `members` (duplicates and `me` ignored), end-to-end
    /// encrypted or not.
    pub async fn create_group(
        &self,
        me: &str,
        title: &str,
        members: &[String],
        encrypted: bool,
    ) -> Result<Conversation, ChatError> {
        let mut errors = Vec::new();
        if let Err(m) = check_title(title) {
            errors.push(praxis_http::FieldError::new("title", m));
        }
        let mut unique: Vec<String> = Vec::with_capacity(members.len());
        for (i, account) in members.iter().enumerate() {
            match check_account(account) {
                Err(m) => errors.push(praxis_http::FieldError::new(format!("members[{i}]"), m)),
                Ok(()) if account != me && !unique.contains(account) => {
                    unique.push(account.clone())
                }
                Ok(()) => {}
            }
        }
        let max = self.settings.max_members;
        if unique.len() + 1 > max {
            errors.push(praxis_http::FieldError::new(
                "members",
                format!(
                    "a group has at most {max} members with its creator (the max_members setting), got {}",
                    unique.len() + 1
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(ChatError::Invalid(errors));
        }
        let id = uuid::Uuid::now_v7().to_string();
        Ok(self
            .store
            .create_group(&id, me, title.trim(), &unique, encrypted, now_ms())
            .await?)
    }

    /// A conversation of `me`'s and its members.
    pub async fn view(
        &self,
        me: &str,
        conversation: &str,
    ) -> Result<(Conversation, Vec<Member>), ChatError> {
        let (found, _) = self.membership(me, conversation).await?;
        let members = self.store.members(conversation).await?;
        Ok((found, members))
    }

    /// Adds `account` to a group of `me`'s with `role`, or sets its role. Owners only.
    pub async fn add_member(
        &self,
        me: &str,
        conversation: &str,
        account: &str,
        role: Role,
    ) -> Result<MemberChange, ChatError> {
        check_account(account).map_err(|m| ChatError::field("account", m))?;
        let (found, mine) = self.membership(me, conversation).await?;
        group_owner(&found, &mine, "add members or change roles")?;
        match self
            .store
            .add_member(
                conversation,
                account,
                role,
                self.settings.max_members,
                now_ms(),
            )
            .await?
        {
            Added::Joined => Ok(MemberChange::Joined),
            Added::RoleSet => Ok(MemberChange::RoleSet),
            Added::Full => Err(ChatError::Conflict(
                "group-full",
                format!(
                    "the group has {} members, the most the max_members setting allows; remove one first",
                    self.settings.max_members
                ),
            )),
        }
    }

    /// Removes `account` from a group of `me`'s: anyone may leave; owners may remove others.
    pub async fn remove_member(
        &self,
        me: &str,
        conversation: &str,
        account: &str,
    ) -> Result<MemberChange, ChatError> {
        let (found, mine) = self.membership(me, conversation).await?;
        if found.kind == Kind::Direct {
            return Err(ChatError::Conflict(
                "direct-conversation",
                "a direct conversation keeps its two members".to_owned(),
            ));
        }
        if account != me {
            group_owner(&found, &mine, "remove other members")?;
        }
        match self
            .store
            .remove_member(conversation, account, now_ms())
            .await?
        {
            Some(promoted) => Ok(MemberChange::Left { promoted }),
            None => Err(ChatError::NotFound(format!(
                "{account} is not a member of conversation {conversation}"
            ))),
        }
    }

    /// `me`'s conversations, newest activity first, after `cursor`.
    pub async fn list(
        &self,
        me: &str,
        cursor: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Listed>, ChatError> {
        Ok(self.store.list(me, cursor, limit).await?)
    }
}

/// Member management is for the owners of a group.
fn group_owner(found: &Conversation, mine: &Member, what: &str) -> Result<(), ChatError> {
    if found.kind == Kind::Direct {
        return Err(ChatError::Conflict(
            "direct-conversation",
            "a direct conversation keeps its two members; create a group instead".to_owned(),
        ));
    }
    if mine.role != Role::Owner {
        return Err(ChatError::Forbidden(format!(
            "only owners of the group may {what}; you are a {}",
            mine.role
        )));
    }
    Ok(())
}
