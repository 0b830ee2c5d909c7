# The two messages hold a percent sign: doubled, so that Django's formatting of the message
# (% {"name": ...}) shows it instead of failing (a 500 on a 0 % share). No SQL.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conventions', '0009_plausible_dates'),
        ('mutualisation', '0004_document_access_log'),
    ]

    operations = [
        migrations.AlterConstraint(
            model_name='agentassignment',
            name='agent_share_is_a_percentage',
            constraint=models.CheckConstraint(condition=models.Q(('share_percent__gt', 0), ('share_percent__lte', 100)), name='agent_share_is_a_percentage', violation_error_message='La quotité est comprise entre 0 et 100 %%.'),
        ),
        migrations.AlterConstraint(
            model_name='usageforecast',
            name='fixed_share_is_a_percentage',
            constraint=models.CheckConstraint(condition=models.Q(('fixed_share_percent__isnull', True), models.Q(('fixed_share_percent__gte', 0), ('fixed_share_percent__lte', 100)), _connector='OR'), name='fixed_share_is_a_percentage', violation_error_message='Une part fixe est comprise entre 0 et 100 %%.'),
        ),
    ]
