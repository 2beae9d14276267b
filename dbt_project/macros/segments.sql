{#- Segments are models whose config has `meta: {segment: <name>}` (see models/segments/). These macros
    find them in the dbt graph, so adding a segment is one new SQL file with its YAML. -#}

{#- The segment models, sorted by segment name (execution time only; empty while parsing). -#}
{% macro segment_models() -%}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and (node.config.meta or {}).get('segment') -%}
                {%- do found.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found | sort(attribute='config.meta.segment')) }}
{%- endmacro %}


{#- One segment's members as (customer_id, segment): the segment model's own SQL, rendered here.
    Reading the SQL rather than the segment's view keeps the build order right without listing every
    segment in a depends_on hint; the models a segment reads must be parents of the calling model. -#}
{% macro segment_members_of(node) -%}
    {%- set missing = node.depends_on.nodes | reject('in', model.depends_on.nodes) | list -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(
            "segment model " ~ node.name ~ " reads " ~ (missing | join(', ')) ~ ", which "
            ~ model.name ~ " does not depend on: list it in the var flowhouse_segment_inputs (a model"
            ~ " of a store's own project), or add `-- depends_on: {{ ref('<model>') }}` for it to "
            ~ model.original_file_path) }}
    {%- endif -%}
    select distinct
        members.customer_id,
        cast('{{ node.config.meta.segment }}' as {{ dbt.type_string() }}) as segment
    from (
        {{ render(node.raw_code) }}
    ) as members
    where members.customer_id is not null
{%- endmacro %}
