from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('caretrack', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Event',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('type', fields.CharField(max_length=64)),
                ('kind', fields.CharField(db_index=True, max_length=32)),
                ('occurred_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('actor_id', fields.IntField(null=True)),
                ('subject_kind', fields.CharField(null=True, max_length=32)),
                ('subject_id', fields.CharField(null=True, max_length=64)),
                ('data', fields.TextField(default='{}', unique=False)),
                ('published_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'events', 'app': 'caretrack', 'pk_attr': 'id', 'table_description': 'A typed payload written in the same transaction as the change it describes.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EventCursor',
            fields=[
                ('user_id', fields.IntField(primary_key=True, unique=True, db_index=True)),
                ('last_seq', fields.BigIntField(default=0)),
            ],
            options={'table': 'event_cursors', 'app': 'caretrack', 'pk_attr': 'user_id', 'table_description': 'The last sequence issued to a recipient. Writers bump it with'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EventDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user_id', fields.IntField()),
                ('seq', fields.BigIntField()),
                ('event', fields.ForeignKeyField('caretrack.Event', source_field='event_id', db_index=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'event_deliveries', 'app': 'caretrack', 'unique_together': (('user_id', 'seq'),), 'pk_attr': 'id', 'table_description': "Event `event_id` is number `seq` in `user_id`'s stream."},
            bases=['Model'],
        ),
    ]
